// Owns the precompiled header; intentionally empty.
