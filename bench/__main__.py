"""`python -m bench`: run every benchmark and print its figures."""

from bench import export, fhir_http, intake, mappings, search, summaries, summary_delivery, sync, validation


def main() -> None:
    validation.main()
    print()
    mappings.main()
    print()
    intake.main()
    print()
    summaries.main()
    print()
    search.main()
    print()
    summary_delivery.main()
    print()
    export.main()
    print()
    sync.main()
    print()
    fhir_http.main()


if __name__ == "__main__":
    main()
