module pion_call

go 1.19
