from qinqing.cli import main

main()
