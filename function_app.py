"""ResolveMeQ Functions: composes the blueprints and the logging setup. No I/O at import."""

import azure.functions as func

from functions import (
    agent,
    analytics,
    auth,
    console,
    feedback_links,
    followups,
    insights,
    notifications,
    ops,
    tickets,
)
from shared.observability import configure_logging

configure_logging()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(tickets.bp)
app.register_functions(agent.bp)
app.register_functions(ops.bp)
app.register_functions(notifications.bp)
app.register_functions(followups.bp)
app.register_functions(auth.bp)
app.register_functions(feedback_links.bp)
app.register_functions(insights.bp)
app.register_functions(console.bp)
app.register_functions(analytics.bp)
