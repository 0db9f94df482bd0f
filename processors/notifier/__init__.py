"""The notifier: signed "media stored / dead-lettered" callbacks to the platform that sent it."""

from mediaflow.processors.notifier.callbacks import Callback, Callbacks
from mediaflow.processors.notifier.delivery import Sender, answer_error, guarded_sessions
from mediaflow.processors.notifier.payload import Notification, notification
from mediaflow.processors.notifier.stage import STAGE, NotifierStage, open_worker, presigner

__all__ = [
    "Callback",
    "Callbacks",
    "Notification",
    "NotifierStage",
    "STAGE",
    "Sender",
    "answer_error",
    "guarded_sessions",
    "notification",
    "open_worker",
    "presigner",
]
