"""`python -m bench`: run every benchmark and print its figures."""

from bench import fhir_http, intake, mappings, search, summaries, validation


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
    fhir_http.main()


if __name__ == "__main__":
    main()
