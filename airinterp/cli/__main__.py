from airinterp.cli import main

main()
