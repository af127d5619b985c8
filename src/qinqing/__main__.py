from qinqing.entrypoints.cli import main

main()
