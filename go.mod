module tsd

go 1.26.0

require (
	github.com/dlclark/regexp2/v2 v2.13.0
	github.com/spf13/cobra v1.10.2
	github.com/spf13/pflag v1.0.9
	golang.org/x/text v0.44.0
)

require github.com/inconshreveable/mousetrap v1.1.0 // indirect
