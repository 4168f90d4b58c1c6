//! The switch-sim target: lowering merges to a programmable-switch pipeline with a resource model, a pipeline simulator, and a hop-by-hop network simulator.
