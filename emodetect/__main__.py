from emodetect.cli import main

main()
