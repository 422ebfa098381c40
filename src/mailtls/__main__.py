import sys

try:
    from mailtls.cli import main
except ValueError as error:  # MAILTLS_STUDENT set to something that is not a student's number
    print(f"error: {error}", file=sys.stderr)
    sys.exit(1)

sys.exit(main())
