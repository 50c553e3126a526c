"""Reach people whose tab is closed: Web Push (``reach/push``) and email
(``reach/email``), chosen per recipient at publish time by the attention rules
(``attention.decide.reach``) and carried out by durable timers
(``store.preferences.PUSH_KIND`` / ``EMAIL_KIND``). docs/reach.md."""
