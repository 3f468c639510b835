"""Treatment summaries for referring physicians: computed once, rendered as FHIR document, C-CDA, HTML, PDF."""
