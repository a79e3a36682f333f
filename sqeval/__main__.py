from sqeval.cli import main

main()
