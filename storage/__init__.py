"""Plain storage libraries: LUKS2, META, GPT, probing, activation. No runtime."""
