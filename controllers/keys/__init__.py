"""Controllers of keys: which keys each volume can use now (KeyResolver) and the lockToSTATE salt."""
