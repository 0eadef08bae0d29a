from territory_service.cli import main

main()
