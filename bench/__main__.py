"""`python -m bench`: run every benchmark and print its figures."""

from bench import intake, mappings, validation


def main() -> None:
    validation.main()
    print()
    mappings.main()
    print()
    intake.main()


if __name__ == "__main__":
    main()
