"""Custom actions, one module per capability; rasa-sdk finds them by import."""

from assistant.actions.campaigns import ActionCampaignNudge
from assistant.actions.cart import (
    ActionAddToCart,
    ActionPrepareCart,
    ActionViewCart,
    ValidateCartForm,
)
from assistant.actions.consent import ActionSubscribe, ActionUnsubscribe
from assistant.actions.handover import ActionHandover
from assistant.actions.orders import ActionOrderStatus
from assistant.actions.policy import ActionShopPolicy
from assistant.actions.products import ActionCompareProducts, ActionProductDetails
from assistant.actions.recommend import ActionGiftIdeas, ActionRecommend
from assistant.actions.search import ActionRefineSearch, ActionSearchProducts
from assistant.actions.session import ActionGreet, ActionSessionStart
from assistant.actions.sizing import ActionSizeAdvice

__all__ = [
    "ActionAddToCart", "ActionCampaignNudge", "ActionCompareProducts",
    "ActionGiftIdeas", "ActionGreet",
    "ActionHandover", "ActionOrderStatus", "ActionPrepareCart", "ActionProductDetails",
    "ActionRecommend", "ActionRefineSearch", "ActionSearchProducts",
    "ActionSessionStart", "ActionShopPolicy", "ActionSizeAdvice", "ActionSubscribe",
    "ActionUnsubscribe", "ActionViewCart", "ValidateCartForm",
]  # fmt: skip
