"""Authorization: sharing applications, provider reviews with deadlines, disputes, grants
(fields, purpose, expiry, quota) and the fast grant check (service.py is the face other
packages import)."""
