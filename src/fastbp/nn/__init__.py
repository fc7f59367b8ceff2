"""What users touch: ``Network`` and what it is made of and gives back (layout, history and trace, one fit run),
the activation and loss tables, optimizers, schedules, saving and loading, and every argument check."""
