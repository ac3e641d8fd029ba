"""The rubrics shipped with the grader (ex8.yaml), importable as package data."""
