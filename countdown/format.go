package countdown

// The markers of the answer format, the only place they are spelled: a reasoning step is
// StepOpen…StepClose, the graded answer AnswerOpen…AnswerClose. StepClose is also where the tree
// search cuts a step (Task.StepStop).
const (
	StepOpen    = "<step>"
	StepClose   = "</step>"
	AnswerOpen  = "<answer>"
	AnswerClose = "</answer>"
)

// Markers are the format's markers, in the order a tokenizer adds them as tokens.
var Markers = []string{StepOpen, StepClose, AnswerOpen, AnswerClose}
