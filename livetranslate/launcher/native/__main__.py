from livetranslate.launcher.native import hide_secrets_library

print(hide_secrets_library())
