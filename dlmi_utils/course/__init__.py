"""The course tooling: what instructors and students run around the notebooks.

- ``notebooks``: the ``dlmi-labs`` command (student labs generated from the solutions);
- ``grading``: the ``dlmi-grade`` command;
- ``checks``: the students' self-checks, one module per lab;
- ``colab``: the Colab set-up cell and badges (the one place that knows the repository URL).
"""
