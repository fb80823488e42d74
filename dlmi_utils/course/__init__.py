"""The course tooling: what instructors and students run around the notebooks.

- ``notebooks``: the ``dlmi-labs`` command (student labs generated from the solutions);
- ``release``: the repository students get (``dlmi-labs release``);
- ``grading``: the ``dlmi-grade`` command (instructors only: it is not in the student release);
- ``checks``: the students' self-checks, one module per lab;
- ``colab``: the Colab set-up cell and badges (the one place that knows the repository URL).
"""
