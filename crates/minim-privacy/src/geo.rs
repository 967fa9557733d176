//! Geo enrichment (placeholder).
