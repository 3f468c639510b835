"""`python -m bench`: run every benchmark and print its figures."""

from bench import intake, mappings, summaries, summary_delivery, validation


def main() -> None:
    validation.main()
    print()
    mappings.main()
    print()
    intake.main()
    print()
    summaries.main()
    print()
    summary_delivery.main()


if __name__ == "__main__":
    main()
