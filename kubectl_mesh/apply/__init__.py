"""The apply stage of every command: the writer and its one retry loop, the plan
of writes and how their outcome is reported, rollouts, backups, merge patches."""
