"""The API bridge (``waqr api``): the only public component. It authenticates callers and
speaks for the bot at ``BOT_URL``."""
