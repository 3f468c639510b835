"""`python -m bench`: run every benchmark and print its figures."""

from bench import intake, mappings, summaries, sync, validation


def main() -> None:
    validation.main()
    print()
    mappings.main()
    print()
    intake.main()
    print()
    summaries.main()
    print()
    sync.main()


if __name__ == "__main__":
    main()
