// Package learner is the algorithm half of tsd's learner: given rollouts from the actors, it
// produces the next policy. It distils the trajectories the tree search chose (or the best of N
// samples, or groups of samples for the CISPO/GRPO baselines) back into the policy LM with a
// PPO-family update, trains the value head the search uses, and checkpoints everything needed to
// resume bit for bit.
//
// One file per piece, each with its equations: advantage.go (A_t = R − V(s_t), GAE(γ, λ), group
// normalisation), ppo.go (PPO-clip), cispo.go (CISPO), grpo.go (GRPO), value.go (value MSE), kl.go
// (k3 KL to the frozen initial model), loss.go (how they combine: token-level, mean over each
// sequence, then over the batch), trainer.go (the step), checkpoint.go.
//
// The network half (gRPC service, write-ahead buffer, publishing) drives a Trainer. Its duties:
//
//  1. Make the policy and the frozen reference (model.Load of the initial checkpoint, twice), then
//     NewTrainer(policy, ref, cfg); or Resume(dir, ref, cfg, opts) after a restart.
//  2. Check incoming rollouts with CheckRollout (any goroutine) and buffer the good ones.
//  3. From one goroutine at a time, call Step with up to GlobalBatch samples' worth of rollouts; log
//     StepStats.Metrics(). A Step error leaves the weights as they were.
//  4. Every few steps, Save(dir, cursor) the checkpoint (the cursor is the service's own resume
//     state, e.g. its position in the write-ahead log) and publish the weights (SaveWeights in bf16
//     for the actors) once Save has returned. The trainer's tensor work runs on its own
//     tensor.Worker, so no caller locks its thread.
//  5. Close the trainer, then the reference.
//
// Algorithms (Config.Algo) and what they train:
//
//	mcts, best-of-n   one sample per rollout; A_t = R − V(s_t) (GAE); CISPO or PPO-clip; value loss
//	cispo, grpo       G samples per rollout; Â = (R − mean)/(std + 1e-6) per group; no value head
//
// every one with the k3 KL term to the reference and an optional entropy bonus, through the same
// Step. The ratio π_θ/π_b uses the log-probs the actor recorded, so slightly stale rollouts are
// importance-corrected.
package learner
