// Package mcts searches over reasoning steps with pUCT, AlphaZero-style: a language model's
// policy gives priors, its value head scores leaves, and the most-visited path becomes the
// trajectory the learner distils back into the model.
//
// A node is the token sequence so far; an edge is one reasoning step, a sampled continuation
// that stops after Config.StopText, at EOS or after Config.StepMaxTokens tokens. Expanding a
// node samples K continuations; their priors are the softmax of their summed log-probs, copies
// of one step merge into one child, and each child's value is the value head after its last
// token, or, if the child is terminal (EOS, or Config.MaxNewTokens spent), the dense reward of
// its completion. No rollouts.
//
// # The tree never calls the model
//
// Like etcd's RawNode, a Tree hands out the work that needs the model and takes the answers
// back, so the caller decides how to batch. Search does this for one tree; to drive a Tree
// yourself:
//
//  1. NewTree(cfg, prompt, reward).
//  2. Call Select while InFlight() < cfg.Workers and Remaining() > 0. Each call runs one
//     simulation's descent. If it returns a Leaf, the leaf's Request must go to the model. If
//     not, the simulation either ended on a terminal node (already backed up) or collided with
//     a leaf that is being expanded (it holds its virtual visits until that leaf's answer).
//  3. Send the Requests to a Stepper, all in one call: a round.
//  4. Pass each answer to Expand with its Leaf's Node, in any order. Expand adds the children,
//     backs up the leaf's value and releases the collisions that waited on the leaf.
//  5. Repeat from 2 until Remaining() == 0 and InFlight() == 0; then Trajectory and Export.
//
// A Tree belongs to one goroutine. Many trees share the model by running in their own
// goroutines over one Batcher, which gathers their rounds into batches for the GPU.
//
// # Counting
//
// A simulation is one model call (an expansion) or one visit to a terminal node. It adds one
// completed visit, worth one value, to every node on its path, and each value is backed up
// exactly once: a non-root node's own value when the simulation that expands it completes
// (the source also stored it in the node first, counting it twice), a terminal node's reward on
// every visit. The root has no value of its own (the policy value of the prompt is never used
// for selection), so expanding the root backs up nothing. Hence, for every node,
//
//	visits = Σ children's visits + own evaluations
//
// with own evaluations 0 for the root and for leaves not yet expanded, 1 for expanded nodes
// and all visits for terminal nodes; Export.Check verifies this and its value-sum twin.
//
// Values live in [−1, 1] everywhere: the value head's tanh, the dense reward, Q, first-play Q
// and virtual loss. There is no second normalisation (the source normalised values differently
// in training and in search).
//
// # Virtual loss
//
// A descent adds a pending visit to every node it enters; pUCT counts each as
// Config.VirtualVisits visits of value −Config.VirtualLoss (the source: one visit of value 0), so
// concurrent simulations of one tree spread out. Backup turns the pending visit into a
// completed one.
package mcts
