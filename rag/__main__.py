from rag.apps.cli import main

raise SystemExit(main())
