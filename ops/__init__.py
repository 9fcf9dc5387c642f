"""Operations: the `vitrine` CLI, migrations, backups, the demo."""
