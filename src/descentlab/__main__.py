import sys

try:  # Ctrl-C while the command's modules load: one line, as later (cli.main)
    from descentlab.cli import main
except KeyboardInterrupt:
    sys.stderr.write("\ndescentlab: interrupted\n")
    sys.exit(130)

sys.exit(main())
