from vnetctl.cli.main import main

raise SystemExit(main())
