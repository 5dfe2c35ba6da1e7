from sgdtemp.cli import main

raise SystemExit(main())
