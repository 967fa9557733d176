//! User-agent parsing (placeholder).
