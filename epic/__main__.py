from epic.cli import main

main()
