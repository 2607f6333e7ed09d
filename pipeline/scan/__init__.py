"""The leak scanner: proves that no identifier reached an output file."""
