"""emrad-sim: discrete-event simulation of radiology reporting capacity across NHS imaging networks."""
