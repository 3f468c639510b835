"""Who may call what: API bearer tokens now; SMART Backend Services for the FHIR API later."""
