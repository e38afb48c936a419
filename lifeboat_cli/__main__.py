from lifeboat_cli.main import main

raise SystemExit(main())
