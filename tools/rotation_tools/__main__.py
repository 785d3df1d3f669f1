from rotation_tools.cli import main

raise SystemExit(main())
