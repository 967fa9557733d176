//! PII detectors (placeholder until the detectors land).
