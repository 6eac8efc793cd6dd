"""The label audit: out-of-sample scores for every labelled face, and the faces whose given label
those scores contradict (cleanlab's confident learning), ranked, listed and shown."""
