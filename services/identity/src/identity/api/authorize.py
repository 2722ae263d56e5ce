"""The authorization endpoint, the login and consent steps, and logout."""

from fastapi import APIRouter

router = APIRouter(tags=["authorization"])
