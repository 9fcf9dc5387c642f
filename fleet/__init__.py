"""What every process knows about bot instances: states, runtime store, control protocol."""
