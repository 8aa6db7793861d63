"""The numpy mirror of the device learner: same algorithms, same random numbers, same arithmetic."""
