"""Design before the study: randomisation into arms and power by simulation."""
