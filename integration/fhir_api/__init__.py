"""The FHIR R4 server hospital EHRs pull from: serves stored bytes, never re-validates on the way out."""
