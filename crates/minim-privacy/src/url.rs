//! URL hygiene (placeholder).
