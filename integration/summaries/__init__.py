"""Treatment summaries for referring physicians: one computation, four formats (FHIR, C-CDA, HTML, PDF)."""
